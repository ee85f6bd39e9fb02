//! Bounded pools of low-priority threads for CPU-bound work that must not
//! take the cores from sessions' short commands: Argon2 (`identity::password`)
//! and IMAP SEARCH's scans of a folder listing. A job queues for a slot
//! instead of filling tokio's blocking pool, and the pool's threads run at a
//! lower scheduling priority ([`NICE`]): when the cores are busy, the runtime's
//! threads (every session's I/O and short commands) go first.

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The nice value of the pools' threads (0 is normal, 19 the lowest).
pub const NICE: i32 = 10;

/// A job for a pool thread.
type Job = Box<dyn FnOnce() + Send>;

/// A pool of threads at [`NICE`], each running one job at a time.
#[derive(Debug)]
pub struct CpuPool {
    permits: Semaphore,
    jobs: mpsc::Sender<Job>,
}

/// A free slot of a [`CpuPool`], held until its job is done: taken before
/// the job's inputs (e.g. a lock guard) are, so that they are not held
/// while waiting for the pool.
pub struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    jobs: &'a mpsc::Sender<Job>,
}

impl CpuPool {
    /// `size` threads (at least one), named `name-N`.
    pub fn new(name: &str, size: usize) -> CpuPool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..size.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, pool = name, "pool thread not started");
            }
        }
        CpuPool {
            permits: Semaphore::new(size.max(1)),
            jobs,
        }
    }

    /// Waits for a free slot; None once the pool is closed.
    pub async fn slot(&self) -> Option<Slot<'_>> {
        Some(Slot {
            _permit: self.permits.acquire().await.ok()?,
            jobs: &self.jobs,
        })
    }

    /// Runs `job` on a pool thread once a slot is free; None if the job
    /// panicked or no pool thread is left.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.slot().await?.run(job).await
    }
}

impl Slot<'_> {
    /// Runs `job` in this slot; None if it panicked or no pool thread is left.
    pub async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(job());
            }))
            .ok()?;
        result.await.ok()
    }
}

/// A pool thread: lowers its own priority, then runs jobs until the pool
/// is dropped. A panicking job loses its caller's answer, not the thread.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Sets this thread's nice value to [`NICE`] (on Linux a thread has its
/// own; raising it needs no privilege).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::warn!(error = %e, "pool thread keeps its priority");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn jobs_run_at_a_lower_priority_and_survive_a_panic() {
        let pool = super::CpuPool::new("test", 1);
        #[cfg(target_os = "linux")]
        {
            let nice = pool
                .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
                .await;
            assert_eq!(nice.map(|r| r.ok()), Some(Some(super::NICE)));
        }
        assert_eq!(pool.run(|| -> u8 { panic!("job fails") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7), "the thread outlives a panic");
        let slot = pool.slot().await.expect("slot");
        assert_eq!(slot.run(|| "in a slot").await, Some("in a slot"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_runs_at_most_its_size_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = Arc::new(super::CpuPool::new("test", 2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..12 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for j in jobs {
            assert_eq!(j.await.unwrap(), Some(()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
