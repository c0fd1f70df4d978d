//! What a thread that serves a queue (a run lane, the chat-history writer)
//! does when the queue runs dry: it gives its core away a few times before
//! it goes to sleep.
//!
//! A thread asleep on a futex costs whoever hands it the next item a
//! wake-up system call, which on a virtual machine sends an interrupt to
//! the other core (about 13 µs a wake-up, measured on the data plane at 64
//! connections), and costs itself a sleep and a switch back in. On a busy
//! host the next item is usually a few microseconds away. Yielding instead
//! lets the threads that produce items run (nothing spins while there is
//! other work for the core), and the queue is looked at again when the
//! scheduler comes back; only a queue still empty after [`YIELDS`] looks
//! puts the thread to sleep. On an idle host that is a few dozen
//! microseconds of CPU once per burst.
//!
//! echo.json at 64 connections, stored (BENCHMARKS.md): 4–13% more
//! requests a second on 3–11% less CPU each; the writer's waits fell from
//! 0.25 to 0.01 a request, and it commits larger batches. At one
//! connection, 20% more requests a second.

/// How often a thread looks at its empty queue, yielding in between,
/// before it sleeps.
pub(crate) const YIELDS: usize = 64;

/// Looks for an item with `poll`, giving the core away between looks, at
/// most [`YIELDS`] times; `None` if there was none: time to sleep.
pub(crate) fn poll_yielding<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..YIELDS {
        if let Some(item) = poll() {
            return Some(item);
        }
        std::thread::yield_now();
    }
    poll()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_that_never_comes_gives_up_after_the_yields() {
        let mut looks = 0;
        let found = poll_yielding(|| -> Option<()> {
            looks += 1;
            None
        });
        assert_eq!((found, looks), (None, YIELDS + 1));
    }

    #[test]
    fn the_first_item_found_ends_the_looking() {
        let mut looks = 0;
        let found = poll_yielding(|| {
            looks += 1;
            (looks == 3).then_some("run")
        });
        assert_eq!((found, looks), (Some("run"), 3));
    }
}
