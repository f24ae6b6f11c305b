//! One action on many machines at once: the form posted from the machines lists, and the page of
//! per-machine results.
