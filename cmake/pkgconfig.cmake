# pkg-config files: greenfiber.pc and greenfiber-patch.pc, installed in
# <libdir>/pkgconfig, for builds that do not use CMake:
#   c++ -std=c++20 app.cpp $(pkg-config --cflags --libs greenfiber)
# Included from the top-level CMakeLists.txt after GNUInstallDirs.

# The prefix is found from the .pc file's own place (${pcfiledir}), so the
# files stay right under `cmake --install --prefix <elsewhere>`; absolute
# install dirs (a distribution's /usr/lib/...) are written as they are.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(GREEN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(GREEN_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" up "${up}")
  set(GREEN_PC_PREFIX "\${pcfiledir}/${up}")
  set(GREEN_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(GREEN_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(GREEN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# Boost.Context ships no .pc file on Debian: name the library, and its
# directory when the linker would not search it anyway.
set(GREEN_PC_BOOST_CONTEXT "-lboost_context")
get_target_property(boost_context_lib Boost::context LOCATION)
if(boost_context_lib)
  get_filename_component(boost_context_dir "${boost_context_lib}" DIRECTORY)
  if(NOT boost_context_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    set(GREEN_PC_BOOST_CONTEXT "-L${boost_context_dir} -lboost_context")
  endif()
endif()

# The patch target's interface link options (keep the fd seam, export
# green::sched), spelled for the compiler driver: one list, two spellings.
get_target_property(patch_link_options greenfiber_patch INTERFACE_LINK_OPTIONS)
list(TRANSFORM patch_link_options REPLACE "^LINKER:" "-Wl,")
list(JOIN patch_link_options " " GREEN_PC_PATCH_LINK_OPTIONS)

foreach(pc greenfiber greenfiber-patch)
  configure_file(cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
