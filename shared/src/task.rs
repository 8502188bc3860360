//! Work that usually finishes at once, run in place.

use std::future::Future;
use std::task::{Context, Waker};

/// Polls `work` once here and, if it is not done, spawns it as a task of the current thread's
/// runtime, which polls it again with its own waker. For work that is usually done on its
/// first poll (a publish on the in-process bus), where a task of its own costs a spawn and a
/// wake-up. Must run inside a `LocalSet` (an actix arbiter).
pub fn run_or_spawn(work: impl Future<Output = ()> + 'static) {
    let mut work = Box::pin(work);
    if work.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending() {
        tokio::task::spawn_local(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[tokio::test]
    async fn work_done_at_once_is_done_in_place_and_the_rest_in_a_task() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let done = Rc::new(Cell::new(0));
                let d = done.clone();
                run_or_spawn(async move { d.set(d.get() + 1) });
                assert_eq!(done.get(), 1, "finished before run_or_spawn returned");
                let d = done.clone();
                run_or_spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    d.set(d.get() + 1)
                });
                assert_eq!(done.get(), 1);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                assert_eq!(done.get(), 2, "the unfinished work finished in its task");
            })
            .await;
    }
}
