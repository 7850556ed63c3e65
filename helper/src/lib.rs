//! Tandem Helper: the native program on the customer's computer that shares its screen and
//! injects the CSR's control, behind platform traits (see docs/helper.md).
#![deny(unsafe_code)]

pub mod encode;
pub mod key;
pub mod pace;
pub mod picture;
pub mod platform;
