//! Worker threads reused across units: a unit is a closure sent on a channel; a new
//! thread is started only when no worker is idle. Starting a thread per unit costs a
//! stack and a malloc arena each time, which shows on long chains of tiny tasks.
//! Must not: limit concurrency (the scheduler does), or outlive the run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct Pool {
    tx: Option<Sender<Job>>,
    rx: Receiver<Job>,
    idle: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    pub fn new() -> Pool {
        let (tx, rx) = unbounded();
        Pool {
            tx: Some(tx),
            rx,
            idle: Arc::new(AtomicUsize::new(0)),
            threads: Vec::new(),
        }
    }

    /// Run `job` on an idle worker, or on a new one. False if no thread could be started.
    pub fn submit(&mut self, job: Job) -> bool {
        let busy = self
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err();
        if busy {
            let rx = self.rx.clone();
            let idle = Arc::clone(&self.idle);
            let spawned = std::thread::Builder::new()
                .name("nexus-unit".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    for job in rx {
                        job();
                        idle.fetch_add(1, Ordering::SeqCst);
                    }
                });
            match spawned {
                Ok(h) => self.threads.push(h),
                Err(_) => return false,
            }
        }
        self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx = None;
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_idle_workers() {
        let mut pool = Pool::new();
        let (tx, rx) = unbounded();
        for i in 0..50 {
            let tx = tx.clone();
            assert!(pool.submit(Box::new(move || tx.send(i).unwrap())));
            rx.recv().unwrap();
            // Give the worker a moment to mark itself idle again.
            while pool.idle.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(pool.threads.len(), 1, "sequential jobs share one worker");
    }
}
