pub mod agent;
pub mod audit;
pub mod clusters;
pub mod history;
pub mod render;
pub mod resources;
pub mod server;
