//! The `keygate` binary as a child process, with its output lines collected.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A running `keygate` process; killed when dropped.
pub struct KeygateProcess {
    /// The child.
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `keygate <args>` with only these variables (plus PATH), in a temp directory so
/// no `.env` is picked up, on a free port with a temp SQLite database.
pub fn spawn_keygate(args: &[&str], vars: &[(&str, &str)]) -> KeygateProcess {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut all = vec![("BIND_ADDR", bind.as_str())];
    all.extend_from_slice(vars);
    spawn_keygate_on(port, args, &all)
}

/// [`spawn_keygate`] without `BIND_ADDR`: the variables say where it listens, and
/// `port` is where the tests reach it.
pub fn spawn_keygate_on(port: u16, args: &[&str], vars: &[(&str, &str)]) -> KeygateProcess {
    let dir = std::env::temp_dir();
    let mut command = Command::new(env!("CARGO_BIN_EXE_keygate"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", super::app::temp_sqlite_url())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    KeygateProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
        stdout,
        stderr,
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl KeygateProcess {
    /// Waits until `/healthz` answers.
    pub async fn wait_healthy(&self) {
        let healthy = super::poll::eventually(Duration::from_secs(30), async || {
            awc::Client::default()
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|res| res.status() == 200)
        })
        .await;
        assert!(
            healthy,
            "keygate never became healthy; stderr: {:?}",
            self.stderr_lines()
        );
    }

    /// Stderr lines received so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Stdout lines received so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// Sends a signal (e.g. `libc`-free: via the `kill` command).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for KeygateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `keygate <args>` to completion with these variables; returns (code, stdout, stderr).
pub fn run_keygate(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keygate"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Never the default keygate.db of the shared temp directory.
        .env("DATABASE_URL", super::app::temp_sqlite_url())
        .current_dir(std::env::temp_dir());
    for (k, v) in vars {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
