//! SSH transport.
pub mod config;
