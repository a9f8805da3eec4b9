//! The admin pages (next commit).
