//! SVG chart of inodes against subdataset size.
