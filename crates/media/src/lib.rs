//! Encoded media in and out of containers and RTP payloads. Never decodes anything.
//!
//! Sans-IO like `rtc`: readers take byte slices, writers fill caller buffers; no files,
//! clocks or threads in here.
