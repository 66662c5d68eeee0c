pub mod netns;
pub mod rig;
