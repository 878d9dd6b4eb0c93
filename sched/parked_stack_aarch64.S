// weft_call_on_parked_stack: runs fn(arg) on a parked task's stack, just below its saved frame,
// in such a way that an unwinder started inside fn walks on into the parked task's frames
// (see parked_stack_x86_64.S for why, and backtrace.cc for the caller).
//
// The parked frame (context_aarch64.S), 160 bytes from the saved sp:
//     +0 x19 x20 ... +64 x27 x28, +80 x29 x30 (x30: the resume address), +96 d8 ... d15
// While fn runs, sp is the saved sp and this function's CFI describes that frame: to an
// unwinder it is the parked weft_context_switch, returning to the resume address.

#if defined(__aarch64__)

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define WEFT_BTI_C hint 34
#else
#define WEFT_BTI_C
#endif

        .text

// void weft_call_on_parked_stack(void* parked_sp /*x0*/, void (*fn)(void*) /*x1*/,
//                                void* arg /*x2*/)
        .globl  weft_call_on_parked_stack
        .hidden weft_call_on_parked_stack
        .type   weft_call_on_parked_stack, %function
        .p2align 4
weft_call_on_parked_stack:
        .cfi_startproc
        WEFT_BTI_C
        stp     x29, x30, [sp, #-16]!
        .cfi_def_cfa_offset 16
        .cfi_offset x29, -16
        .cfi_offset x30, -8
        mov     x29, sp
        .cfi_def_cfa_register x29
        .cfi_remember_state
        mov     sp, x0
        .cfi_def_cfa sp, 160
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
        mov     x0, x2
        blr     x1
        mov     sp, x29
        .cfi_restore_state
        ldp     x29, x30, [sp], #16
        .cfi_def_cfa sp, 0
        .cfi_restore x29
        .cfi_restore x30
        ret
        .cfi_endproc
        .globl  weft_call_on_parked_stack_end
        .hidden weft_call_on_parked_stack_end
weft_call_on_parked_stack_end:
        .size   weft_call_on_parked_stack, .-weft_call_on_parked_stack

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
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
