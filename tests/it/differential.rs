//! Differential conformance against Clerk's own SDK (being written).
