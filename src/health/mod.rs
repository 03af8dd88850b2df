//! (health: to be written)
