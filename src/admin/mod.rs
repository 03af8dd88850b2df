//! (admin: to be written)
