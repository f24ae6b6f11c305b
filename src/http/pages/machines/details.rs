//! A machine's details page: status, usage, charts of the last hour and day, snapshots, timeline.
