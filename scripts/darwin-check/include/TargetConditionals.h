/* Type-checking for macOS on Linux only (scripts/darwin-check/README): ring, which the share's
   WireGuard (boringtun) uses, compiles C in its build script. A Mac builds with Xcode's SDK. */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
