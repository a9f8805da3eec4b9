//! The self-contained HTML report of a finished run (filled in below).
