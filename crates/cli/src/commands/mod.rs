pub mod audit;
pub mod render;
pub mod resources;
pub mod server;
