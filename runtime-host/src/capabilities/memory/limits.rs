//! What one memory call may ask for. A guest is untrusted: each bound
//! keeps one run from filling the store or the host's memory.

use super::store::MemoryError;
use crate::Message;

/// Most messages one `history` call returns; larger limits are cut to it.
pub const MAX_HISTORY: u32 = 1_000;

/// Most bytes one stored message may hold (text, names, files and
/// properties together).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Most bytes of a session id.
pub const MAX_SESSION_ID_BYTES: usize = 1_024;

/// A session id selects one conversation of the run's tenant and agent: it
/// must be non-empty and short.
pub fn check_session(session_id: &str) -> Result<(), MemoryError> {
    if session_id.trim().is_empty() {
        return Err(MemoryError::Invalid(
            "the session id is empty: a message belongs to a session; pass the run's session id".into(),
        ));
    }
    if session_id.contains('\0') {
        return Err(MemoryError::Invalid("the session id contains a NUL character".into()));
    }
    if session_id.len() > MAX_SESSION_ID_BYTES {
        return Err(MemoryError::Invalid(format!(
            "the session id is {} bytes; the limit is {MAX_SESSION_ID_BYTES}",
            session_id.len()
        )));
    }
    Ok(())
}

/// A message to store must fit in [`MAX_MESSAGE_BYTES`] and hold no NUL
/// character (PostgreSQL's text cannot, and SQLite must not differ).
pub fn check_message(message: &Message) -> Result<(), MemoryError> {
    let fields = [&message.text, &message.sender, &message.sender_name, &message.properties];
    if fields.into_iter().chain(&message.files).any(|f| f.contains('\0')) {
        return Err(MemoryError::Invalid("the message contains a NUL character".into()));
    }
    let size = message.text.len()
        + message.sender.len()
        + message.sender_name.len()
        + message.properties.len()
        + message.files.iter().map(String::len).sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(MemoryError::Invalid(format!(
            "the message is {size} bytes; the memory stores messages of at most {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    Ok(())
}
