//! (sys: to be written)
