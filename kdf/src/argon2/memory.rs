//! Argon2's memory: one fallible allocation, wiped before it is freed.

use super::compress::Block;
use super::Argon2Error;
use core::sync::atomic::{compiler_fence, Ordering};

/// The m' blocks of Argon2's memory, lane after lane.
pub(crate) struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// `count` zeroed blocks, or [`Argon2Error::Memory`] (with the `kib` the caller asked
    /// for) when the allocator refuses: a keyslot may ask for more memory than this
    /// machine has, which must be an error the init can report rather than an abort.
    pub(crate) fn allocate(count: usize, kib: u32) -> Result<Memory, Argon2Error> {
        let mut blocks = Vec::new();
        blocks
            .try_reserve_exact(count)
            .map_err(|_| Argon2Error::Memory { kib })?;
        blocks.resize(count, Block::ZERO);
        Ok(Memory { blocks })
    }

    pub(crate) fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    pub(crate) fn blocks_mut(&mut self) -> &mut [Block] {
        &mut self.blocks
    }
}

impl Drop for Memory {
    /// Every block is derived from the passphrase: wipe them all before freeing.
    ///
    /// This is tens of MiB or more, so it is a plain fill (memset's speed, where volatile
    /// stores of a word each cost a few percent of the whole derivation); handing the
    /// blocks to `black_box` afterwards makes the zeros observable, so the fill is not a
    /// dead store the optimiser may drop before the free.
    fn drop(&mut self) {
        self.blocks.fill(Block::ZERO);
        std::hint::black_box(&mut self.blocks);
        compiler_fence(Ordering::SeqCst);
    }
}
