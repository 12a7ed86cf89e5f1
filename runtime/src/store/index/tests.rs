//! Tests of the index: rows, repair, rebuild, pages.
