pub mod corrupt;
