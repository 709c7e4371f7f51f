//! Unit tests of the connection state machine (filled below).
