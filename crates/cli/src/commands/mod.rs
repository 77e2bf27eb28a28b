pub mod audit;
pub mod resources;
pub mod server;
