/* CYNET_DEBUG_BUILD: 1 in a build with Cython's bounds and initialisation checks on
   (setup.py defines it for CYNET_DEBUG_CYTHON=1), else 0. */
#ifndef CYNET_DEBUG_BUILD
#define CYNET_DEBUG_BUILD 0
#endif
