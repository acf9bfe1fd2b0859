# Install rules and an exported package: find_package(dcp) + dcp::dcp.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(dcp_libs GLOBAL PROPERTY DCP_LIBRARY_TARGETS)
install(TARGETS dcp ${dcp_libs}
        EXPORT dcpTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/api/include/dcp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT dcpTargets NAMESPACE dcp:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dcp)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dcpConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/dcpConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dcp)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dcpConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dcpConfig.cmake ${PROJECT_BINARY_DIR}/dcpConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dcp)

# dcp::torch ships in its own export set: find_package(dcp COMPONENTS torch).
if(DCP_TORCH_ENABLED)
  install(TARGETS dcp_torch EXPORT dcpTorchTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT dcpTorchTargets NAMESPACE dcp:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dcp)
endif()
