//! (lua: to be written)
