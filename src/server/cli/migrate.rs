//! `keygate migrate`: applies the database migrations and exits. It needs only
//! `DATABASE_URL` (and reads `RUST_LOG`/`LOG_FORMAT` for its own lines).

use super::CliError;
use crate::config::env::Env;
use crate::server::config::{self, ServerConfig};
use crate::server::logging;
use crate::server::store::{Store, redact_url};

/// Applies the migrations to `DATABASE_URL`.
pub fn migrate() -> Result<(), CliError> {
    config::load_dotenv()?;
    let env = Env::new(|k: &str| std::env::var(k).ok());
    let database_url = config::database_url(&env)?;
    let format = ServerConfig::log_format(&env)?;
    let _logging = logging::init(format, env.get("RUST_LOG").as_deref(), None)?;
    actix_rt::System::new().block_on(async move {
        let store = Store::connect(&database_url).await?;
        store.migrate().await?;
        println!("migrations applied to {}", redact_url(&database_url));
        Ok(())
    })
}
