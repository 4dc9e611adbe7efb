//! Inbound webhooks from identity providers; today only Clerk's (delivered by Svix).
//!
//! A webhook is trusted only after its signature verifies; nothing in this
//! module may touch the database or the revocation set before that, log a
//! signing secret or echo one in a response.

pub mod clerk;
pub mod svix;
