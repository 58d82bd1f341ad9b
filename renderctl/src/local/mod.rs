//! The local stack: the moto emulator, the job server, the scaler on a local schedule and the
//! fleet supervisor, as real processes on this machine.

pub mod process;
pub mod provision;
pub mod stack;
pub mod supervisor;
