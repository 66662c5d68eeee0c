pub mod docker;
pub mod docker_rig;
pub mod load;
pub mod netns;
pub mod rig;
pub mod webdriver;
