//! The view state of `top`: what the user chose to see — sort, filter,
//! split, expanded processes, pause, help, screen — and the rows and
//! selection that follow from it.
//!
//! Layer: reads the store (`store`) to build its rows; never changes it
//! and never touches the kernel. Rendering reads this and the store.

use std::{cmp::Ordering, collections::BTreeSet};

use super::{
    stats::OpClass,
    store::{Aggregates, Kind, Process, RowKey, Store},
};
use crate::model::Api;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Iocbs,
    Bytes,
    Segments,
    InFlight,
    P50,
    P99,
    Errors,
    Pid,
    Comm,
}

impl SortBy {
    const CYCLE: [Self; 9] = [
        Self::Iocbs,
        Self::Bytes,
        Self::Segments,
        Self::InFlight,
        Self::P50,
        Self::P99,
        Self::Errors,
        Self::Pid,
        Self::Comm,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Self::Iocbs => "IOCB/s",
            Self::Bytes => "MB/s",
            Self::Segments => "SEGS",
            Self::InFlight => "INFL",
            Self::P50 => "P50",
            Self::P99 => "P99",
            Self::Errors => "ERR",
            Self::Pid => "PID",
            Self::Comm => "COMM",
        }
    }
    fn next(self) -> Self {
        let i = Self::CYCLE.iter().position(|&s| s == self).unwrap_or(0);
        Self::CYCLE[(i + 1) % Self::CYCLE.len()]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Pid(u32),
    Op(OpClass),
    /// The processes that submitted through this interface.
    Api(Api),
    /// Substring of the task name.
    Comm(String),
}

impl Filter {
    /// A number is a pid, an api name (aio, io_uring, sync) an api, an op
    /// name an op, anything else part of a comm.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Ok(pid) = text.parse() {
            return Some(Self::Pid(pid));
        }
        if let Some(api) = Api::from_name(&text.to_ascii_lowercase()) {
            return Some(Self::Api(api));
        }
        Some(match OpClass::parse(text) {
            Some(op) => Self::Op(op),
            None => Self::Comm(text.to_owned()),
        })
    }

    fn admits(&self, pid: u32, process: &Process) -> bool {
        match self {
            Self::Pid(p) => *p == pid,
            Self::Comm(c) => process.comm.contains(c.as_str()),
            Self::Op(op) => process.group.total.count(*op) > 0,
            Self::Api(api) => process.group.total.count_api(*api) > 0,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Pid(p) => format!("pid {p}"),
            Self::Op(op) => format!("op {}", op.name()),
            Self::Api(api) => format!("api {api}"),
            Self::Comm(c) => format!("comm ~{c}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Table,
    Detail,
}

#[derive(Clone, Debug)]
pub struct View {
    pub sort: SortBy,
    pub reverse: bool,
    pub filter: Option<Filter>,
    /// Text being typed after `f` or `/`.
    pub filter_input: Option<String>,
    pub split: bool,
    /// Rows are cgroups, each the sum of its processes (`g`).
    pub by_cgroup: bool,
    pub expanded: BTreeSet<u32>,
    pub paused: bool,
    pub help: bool,
    pub screen: Screen,
    /// Rows as last refreshed (frozen while paused).
    pub rows: Vec<RowKey>,
    pub selected: usize,
    /// The store's aggregates as they were when paused.
    frozen: Option<Box<Aggregates>>,
}

impl Default for View {
    fn default() -> Self {
        Self {
            sort: SortBy::Iocbs,
            reverse: false,
            filter: None,
            filter_input: None,
            split: false,
            by_cgroup: false,
            expanded: BTreeSet::new(),
            paused: false,
            help: false,
            screen: Screen::Table,
            rows: Vec::new(),
            selected: 0,
            frozen: None,
        }
    }
}

impl View {
    /// What the table and detail view show: live, or as it was when paused.
    pub fn shown<'a>(&'a self, store: &'a Store) -> &'a Aggregates {
        self.frozen.as_deref().unwrap_or(&store.live)
    }

    /// Rebuilds the row list: filter, sort, expand, split; keeps the selection on its row.
    pub fn refresh(&mut self, store: &Store) {
        let selected = self.selected_row();
        let mut rows = Vec::new();
        if self.by_cgroup {
            self.push_cgroup_rows(&mut rows, store);
        } else {
            for pid in self.sorted_pids(store) {
                self.push_rows(&mut rows, store, pid);
            }
        }
        self.rows = rows;
        self.selected = selected
            .and_then(|s| self.rows.iter().position(|r| *r == s))
            .unwrap_or(self.selected)
            .min(self.rows.len().saturating_sub(1));
    }

    /// The processes the filter admits, in the order of the sort.
    fn sorted_pids(&self, store: &Store) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .shown(store)
            .processes
            .iter()
            .filter(|(pid, p)| self.filter.as_ref().is_none_or(|f| f.admits(**pid, p)))
            .map(|(pid, _)| *pid)
            .collect();
        let key = |pid| RowKey {
            pid,
            ctx: None,
            kind: None,
            cgroup: None,
        };
        pids.sort_by(|&a, &b| {
            let order = self.compare(store, &key(a), &key(b));
            if self.reverse { order.reverse() } else { order }
        });
        pids
    }

    /// A process's rows, then its contexts' when expanded; split rows only
    /// for a kind it has.
    fn push_rows(&self, rows: &mut Vec<RowKey>, store: &Store, pid: u32) {
        let kinds: &[Option<Kind>] = if self.split {
            &[Some(Kind::Vectored), Some(Kind::Scalar)]
        } else {
            &[None]
        };
        let process = &self.shown(store).processes[&pid];
        let mut groups = vec![(None, &process.group)];
        if self.expanded.contains(&pid) {
            groups.extend(process.contexts.iter().map(|(&ctx, g)| (Some(ctx), g)));
        }
        for (ctx, group) in groups {
            for &kind in kinds {
                if kind.is_none() || group.stats(kind).iocbs > 0 {
                    rows.push(RowKey {
                        pid,
                        ctx,
                        kind,
                        cgroup: None,
                    });
                }
            }
        }
    }

    /// One row per cgroup with a process the filter admits, in the order of
    /// the sort (PID and COMM: by cgroup id); split rows as for processes.
    fn push_cgroup_rows(&self, rows: &mut Vec<RowKey>, store: &Store) {
        let shown = self.shown(store);
        let admitted: BTreeSet<u64> = shown
            .processes
            .iter()
            .filter(|(pid, p)| self.filter.as_ref().is_none_or(|f| f.admits(**pid, p)))
            .map(|(_, p)| p.cgroup)
            .collect();
        let key = |cgroup, kind| RowKey {
            pid: 0,
            ctx: None,
            kind,
            cgroup: Some(cgroup),
        };
        let mut cgroups: Vec<u64> = admitted.into_iter().collect();
        cgroups.sort_by(|&a, &b| {
            let order = match self.sort {
                SortBy::Pid | SortBy::Comm => a.cmp(&b),
                _ => self.compare(store, &key(a, None), &key(b, None)),
            };
            if self.reverse { order.reverse() } else { order }
        });
        let kinds: &[Option<Kind>] = if self.split {
            &[Some(Kind::Vectored), Some(Kind::Scalar)]
        } else {
            &[None]
        };
        for cgroup in cgroups {
            let Some(group) = shown.cgroups.get(&cgroup) else {
                continue;
            };
            for &kind in kinds {
                if kind.is_none() || group.stats(kind).iocbs > 0 {
                    rows.push(key(cgroup, kind));
                }
            }
        }
    }

    /// Descending by the sort column (ascending for PID and COMM), then by pid.
    fn compare(&self, store: &Store, a: &RowKey, b: &RowKey) -> Ordering {
        let shown = self.shown(store);
        let (Some(sa), Some(sb)) = (shown.stats(a), shown.stats(b)) else {
            return Ordering::Equal;
        };
        let desc = |x: f64, y: f64| y.total_cmp(&x);
        let opt = |x: Option<u64>, y: Option<u64>| y.cmp(&x);
        let primary = match self.sort {
            SortBy::Iocbs => desc(sa.last.iocbs_per_s, sb.last.iocbs_per_s),
            SortBy::Bytes => desc(sa.last.bytes_per_s, sb.last.bytes_per_s),
            SortBy::Segments => desc(
                sa.avg_segments().unwrap_or(0.0),
                sb.avg_segments().unwrap_or(0.0),
            ),
            SortBy::InFlight => store
                .in_flight(b.pid, b.ctx.map(|c| c.id))
                .cmp(&store.in_flight(a.pid, a.ctx.map(|c| c.id))),
            SortBy::P50 => opt(sa.p50_ns, sb.p50_ns),
            SortBy::P99 => opt(sa.last.p99_ns, sb.last.p99_ns),
            SortBy::Errors => sb.errors.cmp(&sa.errors),
            SortBy::Pid => a.pid.cmp(&b.pid),
            SortBy::Comm => shown.comm(a.pid).cmp(shown.comm(b.pid)),
        };
        primary.then(a.pid.cmp(&b.pid))
    }

    pub fn selected_row(&self) -> Option<RowKey> {
        self.rows.get(self.selected).copied()
    }

    pub fn select_next(&mut self) {
        if self.selected + 1 < self.rows.len() {
            self.selected += 1;
        }
    }

    pub fn select_prev(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn cycle_sort(&mut self, store: &Store) {
        self.sort = self.sort.next();
        self.refresh(store);
    }

    pub fn reverse_sort(&mut self, store: &Store) {
        self.reverse = !self.reverse;
        self.refresh(store);
    }

    pub fn toggle_split(&mut self, store: &Store) {
        self.split = !self.split;
        self.refresh(store);
    }

    pub fn toggle_by_cgroup(&mut self, store: &Store) {
        self.by_cgroup = !self.by_cgroup;
        self.selected = 0;
        self.refresh(store);
    }

    /// Expands or collapses a process's contexts; true: now expanded.
    pub fn toggle_expanded(&mut self, pid: u32) -> bool {
        let expanded = !self.expanded.remove(&pid);
        if expanded {
            self.expanded.insert(pid);
        }
        expanded
    }

    /// The trace goes on counting; the table and detail view stop changing.
    pub fn toggle_pause(&mut self, store: &Store) {
        self.paused = !self.paused;
        self.freeze(store);
        self.refresh(store);
    }

    /// While paused, shows the store as it is now from here on.
    fn freeze(&mut self, store: &Store) {
        self.frozen = self.paused.then(|| Box::new(store.live.clone()));
    }

    /// After the store was cleared: the empty table, even while paused.
    pub fn cleared(&mut self, store: &Store) {
        self.freeze(store);
        self.screen = Screen::Table;
        self.refresh(store);
    }

    pub fn enter(&mut self) {
        if self.selected_row().is_some() {
            self.screen = Screen::Detail;
        }
    }

    pub fn back(&mut self) {
        if self.help {
            self.help = false;
        } else {
            self.screen = Screen::Table;
        }
    }

    pub fn begin_filter(&mut self) {
        self.filter_input = Some(String::new());
    }

    /// Applies the typed filter; an empty one removes it.
    pub fn commit_filter(&mut self, store: &Store) {
        if let Some(text) = self.filter_input.take() {
            self.filter = Filter::parse(&text);
            self.selected = 0;
            self.refresh(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use aio_trace_common::IOCB_CMD_PREAD;

    use super::*;
    use crate::tui::{
        state::tests::{RING, sample_state, ticked, uring_state},
        stats::tests::iocb,
    };

    #[test]
    fn sort_cycles_and_reverses() {
        let mut s = ticked(sample_state());
        let (v, store) = (&mut s.view, &s.store);
        assert_eq!(v.sort, SortBy::Iocbs);
        v.cycle_sort(store); // MB/s
        assert_eq!(v.rows[0].pid, 100);
        v.cycle_sort(store); // SEGS
        v.cycle_sort(store); // INFL
        v.cycle_sort(store); // P50
        assert_eq!(v.sort, SortBy::P50);
        assert_eq!(v.rows[0].pid, 200, "slowest first");
        v.reverse_sort(store);
        assert_eq!(v.rows[0].pid, 100);
        for _ in 0..5 {
            v.cycle_sort(store);
        }
        assert_eq!(v.sort, SortBy::Iocbs, "wraps around");
    }

    #[test]
    fn filters_by_pid_comm_and_op() {
        let mut s = ticked(sample_state());
        let (v, store) = (&mut s.view, &s.store);
        for (text, pids) in [
            ("200", vec![200]),
            ("post", vec![200]),
            ("preadv", vec![100]),
            ("fsync", vec![200]),
            ("nothing", vec![]),
            ("", vec![100, 200]),
        ] {
            v.begin_filter();
            v.filter_input = Some(text.into());
            v.commit_filter(store);
            let shown: Vec<u32> = v.rows.iter().map(|r| r.pid).collect();
            assert_eq!(shown, pids, "filter {text:?}");
        }
        assert_eq!(Filter::parse("42"), Some(Filter::Pid(42)));
    }

    #[test]
    fn filters_by_api_and_io_urings_ops() {
        let mut s = ticked(uring_state(false));
        let (v, store) = (&mut s.view, &s.store);
        for (text, pids) in [
            ("io_uring", vec![300]),
            ("IO_URING", vec![300]),
            ("aio", vec![100, 300, 200]),
            ("sync", vec![]),
            ("readv", vec![300]),
            ("preadv", vec![100, 300]),
            ("read_fixed", vec![300]),
        ] {
            v.begin_filter();
            v.filter_input = Some(text.into());
            v.commit_filter(store);
            let shown: Vec<u32> = v.rows.iter().map(|r| r.pid).collect();
            assert_eq!(shown, pids, "filter {text:?}");
        }
        assert_eq!(Filter::parse("io_uring"), Some(Filter::Api(Api::IoUring)));
        assert_eq!(
            Filter::parse("io_uring").unwrap().describe(),
            "api io_uring"
        );
    }

    /// A process's AIO context and its io_uring ring are rows of their own,
    /// each with its api, even were their numbers equal.
    #[test]
    fn an_expanded_process_lists_its_aio_contexts_then_its_rings() {
        let mut s = ticked(uring_state(false));
        let row = s.view.rows.iter().position(|r| r.pid == 300).unwrap();
        s.view.selected = row;
        s.toggle_expand();
        let ctxs: Vec<_> = s
            .view
            .rows
            .iter()
            .filter(|r| r.pid == 300)
            .map(|r| r.ctx.map(|c| (c.api, c.id)))
            .collect();
        assert_eq!(
            ctxs,
            [None, Some((Api::Aio, 0xe)), Some((Api::IoUring, RING))]
        );
        let ring = s
            .view
            .rows
            .iter()
            .find(|r| r.ctx.is_some_and(|c| c.id == RING));
        let ring = ring.copied().unwrap();
        assert!(!ring.has_in_flight(), "the kernel counts AIO contexts only");
        let stats = s.shown().stats(&ring).unwrap();
        assert_eq!(stats.count_api(Api::IoUring), 12);
        assert_eq!(stats.count_api(Api::Aio), 0);
    }

    #[test]
    fn split_and_expand_add_rows() {
        let mut s = ticked(sample_state());
        s.view.toggle_split(&s.store);
        let keys: Vec<_> = s.view.rows.iter().map(|r| (r.pid, r.kind)).collect();
        assert_eq!(
            keys,
            [
                (100, Some(Kind::Vectored)),
                (100, Some(Kind::Scalar)),
                (200, Some(Kind::Scalar))
            ]
        );
        let shown = s.view.shown(&s.store);
        assert_eq!(
            shown.stats(&s.view.rows[0]).unwrap().avg_segments(),
            Some(8.0)
        );
        assert_eq!(
            shown.stats(&s.view.rows[1]).unwrap().avg_segments(),
            Some(1.0)
        );
        s.view.toggle_split(&s.store);
        s.toggle_expand();
        let ctxs: Vec<_> = s
            .view
            .rows
            .iter()
            .map(|r| (r.pid, r.ctx.map(|c| c.id)))
            .collect();
        assert_eq!(
            ctxs,
            [(100, None), (100, Some(0xa)), (100, Some(0xb)), (200, None)]
        );
    }

    #[test]
    fn pause_freezes_the_view_but_not_the_counting() {
        let mut s = ticked(sample_state());
        s.view.toggle_pause(&s.store);
        s.record(&iocb(300, 1, IOCB_CMD_PREAD, 1, 1000));
        s = ticked(s);
        assert_eq!(s.view.rows.len(), 2, "display frozen");
        assert_eq!(s.store.live.processes.len(), 3, "still counting");
        s.view.toggle_pause(&s.store);
        assert_eq!(s.view.rows.len(), 3);
        s.clear();
        assert!(s.view.rows.is_empty());
        assert_eq!(s.store.live.totals.iocbs, 0);
    }

    #[test]
    fn selection_follows_its_row_and_stays_in_range() {
        let mut s = ticked(sample_state());
        let (v, store) = (&mut s.view, &s.store);
        v.select_next();
        v.select_next();
        assert_eq!(v.selected, 1);
        v.reverse_sort(store);
        assert_eq!(v.selected_row().unwrap().pid, 200);
        v.enter();
        assert_eq!(v.screen, Screen::Detail);
        v.back();
        assert_eq!(v.screen, Screen::Table);
    }
}
