//! The machines lists (the owner's, and every machine for admins) with search, filters and pages.
