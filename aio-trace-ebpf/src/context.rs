//! io_setup / io_destroy / io_cancel: context lifetime and cancel counts.

use aio_trace_common::{
    CTX_DESTROY, CTX_EXIT, CTX_OP_CALLS, CTX_SETUP, CtxKey, CtxRecord, LossCause, RECORD_CTX,
};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};

use crate::{
    filter::traced,
    maps::{
        AIO_PIDS, CTX_BORN, EVENTS, SAVED_ARGS, add, close_slot, count_loss, counters, open_slot,
    },
    syscall,
};

// io_setup (nr_events, ctxp) and io_destroy (ctx): the exits read the
// arguments from the caller's registers; the entry programs, which keep them
// for the exit instead, are attached only on a kernel without BTF
// (`syscall::exit_args`).

#[tracepoint]
pub fn sys_enter_io_setup(ctx: TracePointContext) -> u32 {
    syscall::save_args::<2>(&ctx);
    0
}

/// io_destroy keeps its context id and entry time for its exit, always:
/// the kernel may hand the same id to another io_setup while this call
/// waits for the context's iocbs, and that context's iocbs, submitted
/// before the exit, must not be taken for this one's. The destroy record
/// carries the entry time.
#[tracepoint]
pub fn sys_enter_io_destroy(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if traced((pid_tgid >> 32) as u32) {
        // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
        let args = [syscall::arg(&ctx, 0), unsafe { bpf_ktime_get_ns() }, 0, 0];
        if !open_slot(&SAVED_ARGS, pid_tgid as u32, &args) {
            count_loss(LossCause::SyscallStateFull);
        }
    }
    0
}

#[tracepoint]
pub fn sys_exit_io_setup(ctx: TracePointContext) -> u32 {
    let _ = try_exit_ctx_call(&ctx, CTX_SETUP);
    0
}

#[tracepoint]
pub fn sys_exit_io_destroy(ctx: TracePointContext) -> u32 {
    let _ = try_exit_ctx_call(&ctx, CTX_DESTROY);
    0
}

#[tracepoint]
pub fn sys_enter_io_cancel(ctx: TracePointContext) -> u32 {
    let _ = try_enter_io_cancel(&ctx);
    0
}

fn try_exit_ctx_call(ctx: &TracePointContext, event: u8) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    if !traced(pid) {
        return Ok(());
    }
    // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
    let mut ts_ns = unsafe { bpf_ktime_get_ns() };
    // Taken whatever the result: a saved entry must not outlive its call.
    let saved = if event == CTX_DESTROY {
        close_slot(&SAVED_ARGS, pid_tgid as u32)
    } else {
        syscall::exit_args(pid_tgid as u32)
    };
    let Some([first, second, _, _]) = saved else {
        return Ok(());
    };
    if event == CTX_DESTROY {
        ts_ns = second;
    }
    if syscall::ret(ctx) != 0 {
        return Ok(());
    }
    let (aio_ctx, nr_events) = if event == CTX_SETUP {
        // The kernel has just written the new context id to *ctxp.
        // SAFETY: bpf_probe_read_user tolerates any address: a fault is returned as an error, not
        // taken.
        match unsafe { bpf_probe_read_user(second as *const u64) } {
            Ok(id) => (id, first),
            Err(_) => {
                count_loss(LossCause::UserRead);
                return Ok(());
            }
        }
    } else {
        (first, 0)
    };
    // A context's iocbs are those submitted after its io_setup and before
    // its io_destroy (whose entry time `ts_ns` is here): io_destroy's time
    // stands until io_setup hands the id out again, so that iocbs of the
    // destroyed context are known as such (`submit::put_inflight`).
    let key = CtxKey {
        pid,
        op: CTX_OP_CALLS,
        ctx: aio_ctx,
    };
    // A destroy's exit may run after another thread's io_setup got the id
    // (io_destroy unmaps the ring, then waits for its iocbs): it must not
    // take that context's time back.
    // SAFETY: HashMap::get is unsafe because another CPU may delete the entry under the returned
    // reference; the u64 is copied at once.
    let known = unsafe { CTX_BORN.get(key) }.copied().unwrap_or(0);
    if ts_ns > known {
        let _ = CTX_BORN.insert(key, ts_ns, 0);
    }
    let record = CtxRecord {
        kind: RECORD_CTX,
        event,
        _pad: [0; 2],
        pid,
        ctx: aio_ctx,
        nr_events,
        ts_ns,
    };
    if EVENTS.output::<CtxRecord>(&record, 0).is_err() {
        count_loss(LossCause::RingFull);
    }
    Ok(())
}

fn try_enter_io_cancel(ctx: &TracePointContext) -> Result<(), i64> {
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if !traced(pid) {
        return Ok(());
    }
    if let Some(c) = counters(pid, syscall::arg(ctx, 0)) {
        // SAFETY: a counters pointer from `counters` (see the crate doc's Safety); `add` is given
        // a field inside it.
        unsafe { add(&raw mut (*c).io_cancel_calls, 1) };
    }
    Ok(())
}

/// sched:sched_process_exit: group_dead @32 (bool) is set when the last thread exits.
const GROUP_DEAD: usize = 32;

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let _ = try_process_exit(&ctx);
    0
}

#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "aya-ebpf's map methods take `impl Borrow<K>`: a borrow passes the key in place, as the helpers want it"
)]
fn try_process_exit(ctx: &TracePointContext) -> Result<(), i64> {
    let group_dead: u8 = syscall::field(ctx, GROUP_DEAD);
    if group_dead == 0 {
        return Ok(());
    }
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // Only processes that used AIO: every exit on the machine comes through here.
    // SAFETY: HashMap::get is unsafe because another CPU may delete the entry under the returned
    // reference; only its presence is used.
    if unsafe { AIO_PIDS.get(&pid) }.is_none() {
        return Ok(());
    }
    let _ = AIO_PIDS.remove(&pid);
    let record = CtxRecord {
        kind: RECORD_CTX,
        event: CTX_EXIT,
        _pad: [0; 2],
        pid,
        ctx: 0,
        nr_events: 0,
        // SAFETY: bpf_ktime_get_ns takes no arguments and has no preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
    };
    if EVENTS.output::<CtxRecord>(&record, 0).is_err() {
        count_loss(LossCause::RingFull);
    }
    Ok(())
}
