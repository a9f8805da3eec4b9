//! Components shared by pages.

pub mod bell;
pub mod forms;
pub mod layout;
pub mod theme;
