//! Adopting a guest the cluster has and proxdesk does not manage (admins), and releasing a machine.
