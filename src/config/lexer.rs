//! Splits configuration text into lines of words (owned by the config helper: to be written).
