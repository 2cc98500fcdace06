// The entry and page layout shared with the kernel shim, and the status
// machine an entry goes through.
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

TEST(Layout, EntryIsOneCacheLine) {
  EXPECT_EQ(sizeof(flexsc_entry), 64u);
  EXPECT_EQ(alignof(flexsc_entry), 64u);
  EXPECT_EQ(sizeof(flexsc_page), 4096u);
  EXPECT_EQ(FLEXSC_ENTRIES_PER_PAGE, 64);
}

TEST(Layout, FieldsInAbiOrder) {
  EXPECT_EQ(offsetof(flexsc_entry, status), 0u);
  EXPECT_EQ(offsetof(flexsc_entry, flags), 2u);
  EXPECT_EQ(offsetof(flexsc_entry, nr), 4u);
  EXPECT_EQ(offsetof(flexsc_entry, args), 8u);
  EXPECT_EQ(offsetof(flexsc_entry, ret), 56u);
}

TEST(Layout, PrepPutsArgumentsInRegisterOrder) {
  flexsc_entry e{};
  flexsc_prep(&e, SYS_pread64, 1, 2, 3, 4, 5, 6);  // rdi rsi rdx r10 r8 r9
  EXPECT_EQ(e.nr, static_cast<__u32>(SYS_pread64));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(e.args[i], i + 1);
  EXPECT_EQ(e.flags, 0);
  flexsc_prep_nop(&e);
  EXPECT_EQ(e.flags, FLEXSC_ENTRY_NOP);
}

// FREE -> (prepared) -> SUBMITTED/BUSY -> DONE -> FREE, observed through the API.
TEST(StatusMachine, EntryGoesRoundTheCycle) {
  // No flexsc_init: the first submit starts the runtime with defaults.
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  flexsc_entry* e = flexsc_get_entry(ctx);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->status, FLEXSC_FREE);
  flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
  EXPECT_EQ(flexsc_wait_entry(ctx, e), -EINVAL) << "an entry never submitted cannot be waited for";
  EXPECT_FALSE(flexsc_entry_done(e));
  ASSERT_EQ(flexsc_submit(ctx), 1);
  EXPECT_EQ(flexsc_wait_entry(ctx, e), getppid());
  EXPECT_EQ(e->status, FLEXSC_DONE);
  EXPECT_TRUE(flexsc_entry_done(e));
  flexsc_entry* done;
  ASSERT_EQ(flexsc_peek(ctx, &done), 0);
  EXPECT_EQ(done, e);
  flexsc_seen(ctx, e);
  EXPECT_EQ(e->status, FLEXSC_FREE);
  EXPECT_EQ(flexsc_peek(ctx, &done), -EAGAIN);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  flexsc_shutdown();
}

TEST(StatusMachine, ContextHandsOutEveryEntryOnceThenNull) {
  ASSERT_EQ(flexsc_init(nullptr), 0) << "the previous test shut the runtime down";
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(3, &ctx), 0);
  ASSERT_EQ(flexsc_ctx_capacity(ctx), 192u);
  bool seen[192] = {};
  for (unsigned i = 0; i < 192; ++i) {
    flexsc_entry* e = flexsc_get_entry(ctx);
    ASSERT_NE(e, nullptr) << i;
    const unsigned idx = flexsc_entry_index(ctx, e);
    ASSERT_LT(idx, 192u);
    EXPECT_FALSE(seen[idx]);
    seen[idx] = true;
    flexsc_prep_nop(e);
  }
  EXPECT_EQ(flexsc_get_entry(ctx), nullptr) << "full context gives back-pressure";
  ASSERT_EQ(flexsc_submit(ctx), 192);
  for (unsigned i = 0; i < 192; ++i) {
    flexsc_entry* e;
    ASSERT_EQ(flexsc_wait(ctx, &e), 0);
    EXPECT_EQ(e->ret, 0);
    flexsc_seen(ctx, e);
  }
  flexsc_entry* e;
  EXPECT_EQ(flexsc_wait(ctx, &e), -EAGAIN) << "nothing in flight";
  EXPECT_NE(flexsc_get_entry(ctx), nullptr);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  flexsc_shutdown();
}
