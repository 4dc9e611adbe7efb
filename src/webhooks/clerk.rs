//! Clerk webhook verification and events.
