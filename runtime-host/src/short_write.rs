//! Writes that fail halfway, as on a full disk, for the tests of the files
//! the host appends to (the memory store's log, the usage outbox): a test
//! asks that the next write on its thread stop after so many bytes, and
//! the writer's recovery is what is tested. Outside tests nothing fails.

/// The part of `bytes` to write before failing, and the error, when a
/// test asked for it.
pub(crate) fn injected(bytes: &[u8]) -> Option<(&[u8], std::io::Error)> {
    #[cfg(test)]
    if let Some(written) = NEXT.take() {
        let error = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device (injected)");
        return Some((&bytes[..written.min(bytes.len())], error));
    }
    let _ = bytes;
    None
}

#[cfg(test)]
thread_local! {
    static NEXT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Makes the next write on this thread fail after `written` bytes.
#[cfg(test)]
pub(crate) fn fail_next_after(written: usize) {
    NEXT.set(Some(written));
}
