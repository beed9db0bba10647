//! Cross-request batching: epochs from concurrent calls wait in one bounded queue and run
//! together on the backend, each caller answered with exactly its own results.
//!
//! A batch closes when it holds `max_batch` epochs or its oldest request has waited
//! `max_wait`. Requests are kept whole (a request larger than `max_batch` runs alone). The
//! backend runs on a blocking thread so the runtime keeps serving while a batch computes;
//! the next batch fills meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::metrics::Metrics;
use crate::backend::{Backend, EpochResult};
use crate::model::EpochInput;

/// How batches are formed.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Epochs per backend batch at most (1 disables cross-request batching).
    pub max_batch: usize,
    /// How long the oldest queued request waits for a batch to fill.
    pub max_wait: Duration,
    /// Epochs queued at most; a request that does not fit is refused at once.
    pub queue_capacity: usize,
    /// Memory the queued epochs may hold at most (estimated by [`epoch_bytes`]); a request
    /// that does not fit is refused at once. A request alone above it is still taken into an
    /// empty queue, so that every request within the other limits can run.
    pub queue_bytes: usize,
}

/// Heap and inline bytes one decoded epoch holds, the unit of the queue's byte bound.
pub fn epoch_bytes(e: &EpochInput) -> usize {
    use std::mem::size_of;
    let matrix = |m: &crate::model::SparseMatrix| {
        m.offsets.capacity() * size_of::<u32>()
            + (m.cols.capacity() + m.vals.capacity()) * size_of::<u16>()
    };
    size_of::<EpochInput>()
        + e.commit_block.capacity() * size_of::<Option<u64>>()
        + (e.alpha_stake.capacity()
            + e.tao_stake.capacity()
            + e.last_update.capacity()
            + e.block_at_registration.capacity())
            * size_of::<u64>()
        + e.validator_permit.capacity()
        + matrix(&e.weights)
        + matrix(&e.bonds)
}

/// Why a request got no results from the batcher.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The queue cannot take the request now.
    #[error(
        "queue full: {queued} epochs queued + {requested} requested exceed the limit --queue-capacity = {capacity}"
    )]
    QueueFull {
        /// Epochs already queued.
        queued: usize,
        /// Epochs in this request.
        requested: usize,
        /// The queue's capacity in epochs.
        capacity: usize,
    },
    /// The queue holds too much memory to take the request now.
    #[error(
        "queue full: {queued} bytes queued + {requested} requested exceed the limit --queue-mib = {} MiB",
        capacity >> 20
    )]
    QueueBytesFull {
        /// Bytes already queued.
        queued: usize,
        /// Bytes of this request's epochs.
        requested: usize,
        /// The queue's capacity in bytes.
        capacity: usize,
    },
    /// The server is shutting down and accepts no new work.
    #[error("the server is shutting down")]
    Closed,
    /// The caller's deadline passed before its results were ready.
    #[error("deadline exceeded before the epochs ran")]
    DeadlineExceeded,
    /// The backend failed the whole batch.
    #[error("backend failure: {0}")]
    Backend(String),
}

/// One caller's request waiting in the queue.
struct Job {
    inputs: Vec<EpochInput>,
    bytes: usize,
    deadline: Option<Instant>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Vec<EpochResult>, BatchError>>,
}

/// The queue and whether it still accepts work.
#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    queued_epochs: usize,
    queued_bytes: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Whether the backend is computing a batch now.
    running: AtomicBool,
    wake: Notify,
    config: BatchConfig,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue itself consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Handle to the batching queue; cheap to clone, shared by every request handler.
#[derive(Clone)]
pub struct Batcher {
    shared: Arc<Shared>,
}

impl Batcher {
    /// Starts the dispatcher task feeding `backend`; it ends after [`Batcher::close`] once
    /// the queue has drained.
    pub fn start(
        backend: Arc<dyn Backend>,
        config: BatchConfig,
        metrics: Arc<Metrics>,
    ) -> (Self, JoinHandle<()>) {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            running: AtomicBool::new(false),
            wake: Notify::new(),
            config,
            metrics,
        });
        let task = tokio::spawn(dispatch(shared.clone(), backend));
        (Self { shared }, task)
    }

    /// Queues `inputs` and waits for their results, in order. Refuses at once when the
    /// queue is full or closed; gives up at `deadline`. Dropping the returned future
    /// withdraws the request: it is skipped if its batch has not started.
    pub async fn run(
        &self,
        inputs: Vec<EpochInput>,
        deadline: Option<Instant>,
    ) -> Result<Vec<EpochResult>, BatchError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let rx = self.submit(inputs, deadline)?;
        let answer = async { rx.await.unwrap_or(Err(BatchError::Closed)) };
        match deadline {
            Some(d) => tokio::time::timeout_at(d, answer)
                .await
                .unwrap_or(Err(BatchError::DeadlineExceeded)),
            None => answer.await,
        }
    }

    fn submit(
        &self,
        inputs: Vec<EpochInput>,
        deadline: Option<Instant>,
    ) -> Result<oneshot::Receiver<Result<Vec<EpochResult>, BatchError>>, BatchError> {
        let capacity = self.shared.config.queue_capacity;
        let capacity_bytes = self.shared.config.queue_bytes;
        let bytes = inputs.iter().map(epoch_bytes).sum::<usize>();
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.closed {
                return Err(BatchError::Closed);
            }
            if st.queued_epochs + inputs.len() > capacity {
                return Err(BatchError::QueueFull {
                    queued: st.queued_epochs,
                    requested: inputs.len(),
                    capacity,
                });
            }
            if st.queued_bytes > 0 && st.queued_bytes + bytes > capacity_bytes {
                return Err(BatchError::QueueBytesFull {
                    queued: st.queued_bytes,
                    requested: bytes,
                    capacity: capacity_bytes,
                });
            }
            st.queued_epochs += inputs.len();
            st.queued_bytes += bytes;
            st.record(&self.shared.metrics);
            st.queue.push_back(Job {
                inputs,
                bytes,
                deadline,
                enqueued: Instant::now(),
                reply: tx,
            });
        }
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// Stops accepting work; what is queued still runs.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }

    /// Empties the queue once shutdown has given up on it: each waiting caller is answered
    /// as closed.
    pub fn abandon(&self) {
        let mut st = self.shared.lock();
        st.closed = true;
        st.queue.clear();
        st.queued_epochs = 0;
        st.queued_bytes = 0;
        st.record(&self.shared.metrics);
    }

    /// Whether the backend is computing a batch now.
    pub fn batch_running(&self) -> bool {
        self.shared.running.load(Ordering::Relaxed)
    }

    /// Epochs waiting in the queue now.
    pub fn queued_epochs(&self) -> usize {
        self.shared.lock().queued_epochs
    }
}

impl State {
    /// Publishes the queue's size.
    fn record(&self, metrics: &Metrics) {
        metrics.set_queue(self.queued_epochs, self.queued_bytes);
    }

    /// Takes `job` off the counts.
    fn forget(&mut self, job: &Job) {
        self.queued_epochs -= job.inputs.len();
        self.queued_bytes -= job.bytes;
    }
}

/// Drops withdrawn requests and answers expired ones, keeping the counts right.
fn prune(st: &mut State, now: Instant) {
    let (mut epochs, mut bytes) = (0, 0);
    st.queue.retain_mut(|job| {
        let expired = job.deadline.is_some_and(|d| d <= now);
        if job.reply.is_closed() || expired {
            epochs += job.inputs.len();
            bytes += job.bytes;
            return false;
        }
        true
    });
    st.queued_epochs -= epochs;
    st.queued_bytes -= bytes;
}

/// Takes whole requests from the front up to `max_batch` epochs (at least one request).
fn take(st: &mut State, max_batch: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut epochs = 0;
    while let Some(job) = st.queue.front() {
        if !jobs.is_empty() && epochs + job.inputs.len() > max_batch {
            break;
        }
        epochs += job.inputs.len();
        jobs.extend(st.queue.pop_front());
    }
    for job in &jobs {
        st.forget(job);
    }
    jobs
}

/// The dispatcher: forms batches and runs them one after another.
async fn dispatch(shared: Arc<Shared>, backend: Arc<dyn Backend>) {
    let BatchConfig {
        max_batch,
        max_wait,
        ..
    } = shared.config;
    loop {
        let jobs = loop {
            let wait_until = {
                let mut st = shared.lock();
                let now = Instant::now();
                prune(&mut st, now);
                st.record(&shared.metrics);
                match st.queue.front() {
                    None if st.closed => return,
                    None => None,
                    Some(oldest) => {
                        let due = oldest.enqueued + max_wait;
                        if st.queued_epochs >= max_batch || st.closed || now >= due {
                            let jobs = take(&mut st, max_batch);
                            st.record(&shared.metrics);
                            break jobs;
                        }
                        Some(due)
                    }
                }
            };
            match wait_until {
                Some(due) => {
                    tokio::select! {
                        _ = shared.wake.notified() => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => shared.wake.notified().await,
            }
        };
        shared.running.store(true, Ordering::Relaxed);
        run_batch(&shared.metrics, &backend, jobs).await;
        shared.running.store(false, Ordering::Relaxed);
    }
}

/// Runs one batch on a blocking thread and hands each job its slice of the results.
async fn run_batch(metrics: &Metrics, backend: &Arc<dyn Backend>, mut jobs: Vec<Job>) {
    let counts: Vec<usize> = jobs.iter().map(|j| j.inputs.len()).collect();
    let inputs: Vec<EpochInput> = jobs
        .iter_mut()
        .flat_map(|j| std::mem::take(&mut j.inputs))
        .collect();
    let total = inputs.len();
    let started = Instant::now();
    let backend = backend.clone();
    let outcome = tokio::task::spawn_blocking(move || backend.run_batch(&inputs)).await;
    metrics.observe_batch(total, started.elapsed());
    let results = match outcome {
        Ok(Ok(results)) if results.len() == total => Ok(results),
        Ok(Ok(results)) => Err(BatchError::Backend(format!(
            "returned {} results for {total} epochs",
            results.len()
        ))),
        Ok(Err(e)) => Err(BatchError::Backend(e.to_string())),
        Err(e) => Err(BatchError::Backend(format!("batch task failed: {e}"))),
    };
    match results {
        Ok(results) => {
            let mut rest = results.into_iter();
            for (job, count) in jobs.into_iter().zip(counts) {
                // A caller that went away meanwhile just misses its answer.
                let _ = job.reply.send(Ok(rest.by_ref().take(count).collect()));
            }
        }
        Err(e) => {
            tracing::error!(epochs = total, error = %e, "batch failed");
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
