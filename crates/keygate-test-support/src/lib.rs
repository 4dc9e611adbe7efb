//! Helpers shared by keygate's tests: the store's unit tests in `src/` and the
//! integration tests in `tests/it/`. A dev-dependency only (`publish = false`): none of
//! it is part of the library or the service.
//!
//! - [`databases`]: fresh, empty SQLite and PostgreSQL databases;
//! - [`poll`]: waiting for background work with a deadline (the one polling loop);
//! - [`svix`]: Clerk webhook signatures as Svix makes them.

pub mod databases;
pub mod poll;
pub mod svix;
