pub mod dns;
pub mod docker;
pub mod docker_rig;
pub mod load;
pub mod netns;
pub mod rig;
pub mod teammate;
pub mod webdriver;
