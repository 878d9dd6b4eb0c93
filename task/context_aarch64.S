// Stack switching for weft::internal::Context on AArch64, AAPCS64.
//
// A suspended context is its saved stack pointer; above it on its own stack
// sits this 160-byte frame (offsets from the saved sp):
//
//     +144 d14 d15      +64 x27 x28
//     +128 d12 d13      +48 x25 x26
//     +112 d10 d11      +32 x23 x24
//      +96 d8  d9       +16 x21 x22
//      +80 x29 x30       +0 x19 x20   <- saved sp
//
// x30 (lr) is the resume address.
//
// Deliberately NOT saved:
//  * Caller-saved registers (x0-x18, the upper halves of v8-v15, v0-v7 and
//    v16-v31, NZCV): weft_context_switch is an ordinary call, so the
//    compiler has already spilled whatever it needs from them.
//    x18 is the platform register; on Linux it is an ordinary temporary.
//  * FPCR/FPSR: weft assumes tasks do not change the FP environment across
//    a switch (as on x86-64, where the same choice was measured).
//
// Pointer authentication needs nothing here: compiled code signs lr against
// its own sp on its own stack, and a switch resumes it on that same stack.

#if defined(__aarch64__)

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define WEFT_BTI_C hint 34              // bti c
#else
#define WEFT_BTI_C
#endif

        .text

// void* weft_context_switch(void** save_sp /*x0*/, void* new_sp /*x1*/,
//                           void* arg /*x2*/)  — returns arg in x0.
        .globl  weft_context_switch
        .type   weft_context_switch, %function
        .p2align 4
weft_context_switch:
        .cfi_startproc
        WEFT_BTI_C
        sub     sp, sp, #160
        .cfi_def_cfa_offset 160
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8,  d9,  [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        .cfi_offset x19, -160
        .cfi_offset x20, -152
        .cfi_offset x21, -144
        .cfi_offset x22, -136
        .cfi_offset x23, -128
        .cfi_offset x24, -120
        .cfi_offset x25, -112
        .cfi_offset x26, -104
        .cfi_offset x27, -96
        .cfi_offset x28, -88
        .cfi_offset x29, -80
        .cfi_offset x30, -72
        .cfi_offset d8,  -64
        .cfi_offset d9,  -56
        .cfi_offset d10, -48
        .cfi_offset d11, -40
        .cfi_offset d12, -32
        .cfi_offset d13, -24
        .cfi_offset d14, -16
        .cfi_offset d15, -8
        mov     x9, sp
        str     x9, [x0]
        // From here sp is the other context's, whose frame has the same
        // layout, so the CFI above describes it just as well.
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8,  d9,  [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #160
        .cfi_def_cfa_offset 0
        .cfi_restore x19
        .cfi_restore x20
        .cfi_restore x21
        .cfi_restore x22
        .cfi_restore x23
        .cfi_restore x24
        .cfi_restore x25
        .cfi_restore x26
        .cfi_restore x27
        .cfi_restore x28
        .cfi_restore x29
        .cfi_restore x30
        .cfi_restore d8
        .cfi_restore d9
        .cfi_restore d10
        .cfi_restore d11
        .cfi_restore d12
        .cfi_restore d13
        .cfi_restore d14
        .cfi_restore d15
        mov     x0, x2
        ret
        .cfi_endproc
        .size   weft_context_switch, .-weft_context_switch

// void* weft_context_prepare(void* stack_top /*x0*/, void (*entry)(void*)
//                            /*x1*/, void* self /*x2*/)
// Writes a fresh frame whose resume address (x30) is the trampoline, with
// entry in x19, self in x20 and x29 = 0 (ends frame-pointer backtraces);
// returns its sp. After the switch pops it, sp is the 16-byte-aligned top.
        .globl  weft_context_prepare
        .hidden weft_context_prepare
        .type   weft_context_prepare, %function
        .p2align 4
weft_context_prepare:
        .cfi_startproc
        WEFT_BTI_C
        and     x0, x0, #~15
        sub     x0, x0, #160
        stp     x1,  x2,  [x0, #0]      // x19 = entry, x20 = self
        stp     xzr, xzr, [x0, #16]
        stp     xzr, xzr, [x0, #32]
        stp     xzr, xzr, [x0, #48]
        stp     xzr, xzr, [x0, #64]
        adr     x9, .Ltrampoline_resume
        stp     xzr, x9,  [x0, #80]     // x29 = 0, x30 = trampoline
        stp     xzr, xzr, [x0, #96]
        stp     xzr, xzr, [x0, #112]
        stp     xzr, xzr, [x0, #128]
        stp     xzr, xzr, [x0, #144]
        ret
        .cfi_endproc
        .size   weft_context_prepare, .-weft_context_prepare

// [[noreturn]] void weft_context_start_in_place(void* stack_top /*x0*/,
//     void (*entry)(void*) /*x1*/, void* self /*x2*/, void* arg /*x3*/)
// Enters a fresh context exactly as the first switch into one written by
// weft_context_prepare would (entry in x19, self in x20, x29 = 0, sp the
// aligned top, arg in x0), without saving anything: the running execution is
// abandoned, and its frames may be on this very stack.
        .globl  weft_context_start_in_place
        .hidden weft_context_start_in_place
        .type   weft_context_start_in_place, %function
        .p2align 4
weft_context_start_in_place:
        .cfi_startproc
        WEFT_BTI_C
        and     x0, x0, #~15
        mov     sp, x0
        mov     x19, x1
        mov     x20, x2
        mov     x0, x3
        mov     x29, xzr
        b       .Ltrampoline_resume
        .cfi_endproc
        .size   weft_context_start_in_place, .-weft_context_start_in_place

// First code of a fresh context, reached by weft_context_switch's `ret` with
// arg already in x0. Calls weft_context_start(arg, self, entry), which never
// returns. The undefined return address tells unwinders that the stack ends
// here. Reached by `ret`, so it needs no BTI landing pad.
        .type   weft_context_trampoline, %function
        .p2align 4
weft_context_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        // Unwinders look up a return address minus one, so the resume address
        // must not be the first instruction: this nop keeps it inside here.
        nop
.Ltrampoline_resume:
        mov     x1, x20
        mov     x2, x19
        bl      weft_context_start
        brk     #1
        .cfi_endproc
        .size   weft_context_trampoline, .-weft_context_trampoline

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
// Every symbol above that can be reached by an indirect branch starts with
// a landing pad, so a program built with BTI stays BTI-marked.
        .section .note.gnu.property, "a"
        .p2align 3
        .long   4                       // name size
        .long   16                      // descriptor size
        .long   5                       // NT_GNU_PROPERTY_TYPE_0
        .asciz  "GNU"
        .long   0xc0000000              // GNU_PROPERTY_AARCH64_FEATURE_1_AND
        .long   4
        .long   1                       // GNU_PROPERTY_AARCH64_FEATURE_1_BTI
        .p2align 3
#endif

#endif  // __aarch64__

        .section .note.GNU-stack, "", %progbits
