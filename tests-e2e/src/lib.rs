pub mod docker;
pub mod netns;
pub mod rig;
