//! `baton timeline`: a boot's timeline read from the file the init left or from a console
//! log (`console`), printed as a table (`command`) and drawn as an SVG (`draw`).

pub mod command;
pub mod console;
pub mod draw;
