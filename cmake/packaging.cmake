# Packages: a .deb for Debian/Ubuntu worker images and a .tar.gz with the
# same files at the same paths for other distributions (provision/
# install-agent.sh installs either). Included at the end of the top-level
# CMakeLists.txt, after every target exists:
#
#   cmake --build build --target package     # build/skiff_X.Y.Z_ARCH.deb
#                                            # build/skiff-X.Y.Z-Linux-ARCH.tar.gz
#
# Layout in both packages:
#   /usr/bin/skiff-agent, skiff-queue, skiffctl
#   /usr/lib/skiff/            lifecycle hooks, skiff-setup
#   /lib/systemd/system/       skiff-agent.service, skiff-preempt.service
#   /etc/skiff/agent.conf      0640, group skiff (set by skiff-setup)
#   /etc/skiff/lifecycle.conf  0644
#   /usr/share/doc/skiff/      deployment guide, cloud-init templates
#
# The files outside the install prefix (/etc, /lib/systemd) are in the
# component "system", excluded from a plain "cmake --install" so that a
# developer's install never touches /etc; CPack installs every component.
include_guard(GLOBAL)

set(SKIFF_PROVISION_DIR ${PROJECT_SOURCE_DIR}/provision)
set(SKIFF_SYSTEMD_UNITDIR /lib/systemd/system CACHE PATH
    "Where the packages put systemd units (Debian 12: /lib/systemd/system)")

# The binaries install themselves (agent/, queue/, ctl/ CMakeLists).

install(PROGRAMS
    ${SKIFF_PROVISION_DIR}/hooks/skiff-exit-hook
    ${SKIFF_PROVISION_DIR}/hooks/skiff-preempt-watch
    ${SKIFF_PROVISION_DIR}/hooks/terminate-aws
    ${SKIFF_PROVISION_DIR}/hooks/terminate-gcp
    ${SKIFF_PROVISION_DIR}/hooks/terminate-azure
    ${SKIFF_PROVISION_DIR}/hooks/terminate-poweroff
    ${SKIFF_PROVISION_DIR}/skiff-setup
  DESTINATION lib/skiff COMPONENT system EXCLUDE_FROM_ALL)
install(FILES
    ${SKIFF_PROVISION_DIR}/hooks/common.sh
    ${SKIFF_PROVISION_DIR}/hooks/aws-sigv4.sh
  DESTINATION lib/skiff COMPONENT system EXCLUDE_FROM_ALL)
install(FILES
    ${SKIFF_PROVISION_DIR}/systemd/skiff-agent.service
    ${SKIFF_PROVISION_DIR}/systemd/skiff-preempt.service
  DESTINATION ${SKIFF_SYSTEMD_UNITDIR} COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${SKIFF_PROVISION_DIR}/agent.conf
  DESTINATION /etc/skiff
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
  COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${SKIFF_PROVISION_DIR}/lifecycle.conf
  DESTINATION /etc/skiff
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  COMPONENT system EXCLUDE_FROM_ALL)
install(FILES
    ${PROJECT_SOURCE_DIR}/docs/deployment.md
    ${SKIFF_PROVISION_DIR}/README.md
    ${SKIFF_PROVISION_DIR}/cloud-init/user-data-aws.yaml
    ${SKIFF_PROVISION_DIR}/cloud-init/user-data-gcp.yaml
    ${SKIFF_PROVISION_DIR}/cloud-init/user-data-azure.yaml
  DESTINATION share/doc/skiff COMPONENT system EXCLUDE_FROM_ALL OPTIONAL)
install(PROGRAMS ${SKIFF_PROVISION_DIR}/cloud-init/render.sh
  DESTINATION share/doc/skiff COMPONENT system EXCLUDE_FROM_ALL)

# CPack installs each component by name (a monolithic package of all of
# them), so that "system" is in even though it is EXCLUDE_FROM_ALL.
get_cmake_property(_components COMPONENTS)
set(CPACK_INSTALL_CMAKE_PROJECTS "")
foreach(_c ${_components})
  list(APPEND CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};skiff;${_c};/")
endforeach()

set(CPACK_PACKAGE_NAME skiff)
set(CPACK_PACKAGE_VENDOR "skiff")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "polling worker agent for cloud dynamic worker pools")
set(CPACK_PACKAGE_CONTACT "skiff maintainers <skiff@localhost>")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB TGZ)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The archive generator drops absolute destinations (/etc/skiff,
# /lib/systemd/system) unless it installs with DESTDIR, which takes the
# prefix from CPACK_INSTALL_PREFIX; the .deb handles them by itself.
file(WRITE ${PROJECT_BINARY_DIR}/CPackProjectConfig.cmake [=[
if(CPACK_GENERATOR STREQUAL "TGZ")
  set(CPACK_SET_DESTDIR ON)
  set(CPACK_INSTALL_PREFIX /usr)
endif()
]=])
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CPackProjectConfig.cmake)
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/;/\\\\.git/")

execute_process(COMMAND uname -m OUTPUT_VARIABLE _machine
                OUTPUT_STRIP_TRAILING_WHITESPACE)
set(CPACK_PACKAGE_FILE_NAME "skiff-${PROJECT_VERSION}-Linux-${_machine}")
set(CPACK_ARCHIVE_COMPONENT_INSTALL OFF)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# the hooks: curl + jq + openssl talk to metadata services and cloud APIs;
# passwd for useradd in skiff-setup
set(CPACK_DEBIAN_PACKAGE_DEPENDS "curl, jq, openssl, ca-certificates, passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "docker.io | docker-ce | podman-docker")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cloud-init")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${SKIFF_PROVISION_DIR}/deb/postinst
    ${SKIFF_PROVISION_DIR}/deb/prerm
    ${SKIFF_PROVISION_DIR}/deb/postrm
    ${SKIFF_PROVISION_DIR}/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
