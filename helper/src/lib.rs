//! Tandem Helper: the native program on the customer's computer that shares the screen and takes
//! the CSR's control (issue 16).

pub mod encode;
pub mod pace;
