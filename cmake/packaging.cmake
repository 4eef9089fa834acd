# Packages: three .deb files, split the way they are deployed, and one
# .tar.gz with every file at the same paths for other distributions
# (provision/install-agent.sh installs the agent's .deb or the tarball).
# Included at the end of the top-level CMakeLists.txt, after every target
# exists:
#
#   cmake --build build --target package
#     build/skiff-agent_X.Y.Z_ARCH.deb   what a worker image needs: the
#                                        agent, skiff-unpack, the units,
#                                        hooks, lifecycle configuration
#     build/skiff-queue_X.Y.Z_ARCH.deb   the server and its unit
#     build/skiffctl_X.Y.Z_ARCH.deb      the operator CLI
#     build/skiff-X.Y.Z-Linux-ARCH.tar.gz  all of it
#
# Each package has its copyright file, changelog and manual pages
# (docs/man/) under /usr/share; lintian reports no error on any of them
# (tests/provision/package.sh runs it). The files outside the install
# prefix (/etc, /lib/systemd) and the packages' own copies of the programs
# are in components that a plain "cmake --install" leaves out, so that a
# developer's install never touches /etc; CPack installs them.
include_guard(GLOBAL)

set(SKIFF_PROVISION_DIR ${PROJECT_SOURCE_DIR}/provision)
set(SKIFF_SYSTEMD_UNITDIR /lib/systemd/system CACHE PATH
    "Where the packages put systemd units (Debian 12: /lib/systemd/system)")
set(SKIFF_PACKAGE_MAINTAINER "skiff maintainers <maintainers@skiff.example.org>" CACHE STRING
    "Maintainer field of the .deb packages and their changelog (set it to the address that answers for a release)")

set(_agent EXCLUDE_FROM_ALL COMPONENT agent)
set(_queue EXCLUDE_FROM_ALL COMPONENT queue)
set(_ctl EXCLUDE_FROM_ALL COMPONENT ctl)

# The programs install themselves (agent/, queue/, ctl/ CMakeLists) for
# "cmake --install"; each package installs its own copy.
if(TARGET skiff-agent)
  install(TARGETS skiff-agent RUNTIME DESTINATION bin ${_agent})
  install(TARGETS skiff-unpack RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/skiff ${_agent})
endif()
if(TARGET skiff-queue)
  install(TARGETS skiff-queue RUNTIME DESTINATION bin ${_queue})
endif()
if(TARGET skiffctl)
  install(TARGETS skiffctl RUNTIME DESTINATION bin ${_ctl})
endif()

install(PROGRAMS
    ${SKIFF_PROVISION_DIR}/hooks/skiff-exit-hook
    ${SKIFF_PROVISION_DIR}/hooks/skiff-preempt-watch
    ${SKIFF_PROVISION_DIR}/hooks/terminate-aws
    ${SKIFF_PROVISION_DIR}/hooks/terminate-gcp
    ${SKIFF_PROVISION_DIR}/hooks/terminate-azure
    ${SKIFF_PROVISION_DIR}/hooks/terminate-poweroff
    ${SKIFF_PROVISION_DIR}/skiff-setup
  DESTINATION lib/skiff ${_agent})
install(FILES
    ${SKIFF_PROVISION_DIR}/hooks/common.sh
    ${SKIFF_PROVISION_DIR}/hooks/aws-sigv4.sh
  DESTINATION lib/skiff ${_agent})
install(FILES
    ${SKIFF_PROVISION_DIR}/systemd/skiff-agent.service
    ${SKIFF_PROVISION_DIR}/systemd/skiff-preempt.service
  DESTINATION ${SKIFF_SYSTEMD_UNITDIR} ${_agent})
install(FILES ${SKIFF_PROVISION_DIR}/systemd/skiff-queue.service
  DESTINATION ${SKIFF_SYSTEMD_UNITDIR} ${_queue})
# 0644 in the package (lintian: a conffile's mode is the packager's);
# skiff-setup, run by the postinst, makes agent.conf 0640 root:skiff
# before anything can be written into it.
install(FILES ${SKIFF_PROVISION_DIR}/agent.conf ${SKIFF_PROVISION_DIR}/lifecycle.conf
  DESTINATION /etc/skiff
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ ${_agent})
install(FILES ${SKIFF_PROVISION_DIR}/deb/skiff-queue/default
  DESTINATION /etc/default RENAME skiff-queue ${_queue})
install(FILES
    ${PROJECT_SOURCE_DIR}/docs/deployment.md
    ${SKIFF_PROVISION_DIR}/README.md
    ${SKIFF_PROVISION_DIR}/cloud-init/user-data-aws.yaml
    ${SKIFF_PROVISION_DIR}/cloud-init/user-data-gcp.yaml
    ${SKIFF_PROVISION_DIR}/cloud-init/user-data-azure.yaml
  DESTINATION share/doc/skiff-agent ${_agent})
install(PROGRAMS ${SKIFF_PROVISION_DIR}/cloud-init/render.sh
  DESTINATION share/doc/skiff-agent ${_agent})
install(FILES ${PROJECT_SOURCE_DIR}/docs/queue.md
  DESTINATION share/doc/skiff-queue ${_queue})

# Per package: copyright, changelog (gzip -9n, as dpkg wants it), manual
# pages (gzipped).
set(_pkgdoc ${PROJECT_BINARY_DIR}/pkgdoc)
file(MAKE_DIRECTORY ${_pkgdoc})
set(VERSION ${PROJECT_VERSION})
set(MAINTAINER ${SKIFF_PACKAGE_MAINTAINER})
configure_file(${SKIFF_PROVISION_DIR}/deb/changelog ${_pkgdoc}/changelog @ONLY)
function(_skiff_gzip in out)
  execute_process(COMMAND gzip -9nc ${in} OUTPUT_FILE ${out} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "gzip ${in} failed")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${in})
endfunction()
_skiff_gzip(${_pkgdoc}/changelog ${_pkgdoc}/changelog.gz)
foreach(_m skiff-agent.8 skiff-queue.8 skiffctl.1)
  _skiff_gzip(${PROJECT_SOURCE_DIR}/docs/man/${_m} ${_pkgdoc}/${_m}.gz)
endforeach()
foreach(_p agent queue ctl)
  if(_p STREQUAL "ctl")
    set(_name skiffctl)
  else()
    set(_name skiff-${_p})
  endif()
  install(FILES ${SKIFF_PROVISION_DIR}/deb/copyright ${_pkgdoc}/changelog.gz
    DESTINATION share/doc/${_name} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
    EXCLUDE_FROM_ALL COMPONENT ${_p})
endforeach()
install(FILES ${_pkgdoc}/skiff-agent.8.gz DESTINATION share/man/man8 ${_agent})
install(FILES ${_pkgdoc}/skiff-queue.8.gz DESTINATION share/man/man8 ${_queue})
install(FILES ${_pkgdoc}/skiffctl.1.gz DESTINATION share/man/man1 ${_ctl})

set(CPACK_COMPONENTS_ALL agent queue ctl)
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};skiff;ALL;/")

set(CPACK_PACKAGE_NAME skiff)
set(CPACK_PACKAGE_VENDOR "skiff")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "polling worker agent for cloud dynamic worker pools")
set(CPACK_PACKAGE_CONTACT "${SKIFF_PACKAGE_MAINTAINER}")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB TGZ)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The archive generator drops absolute destinations (/etc/skiff,
# /lib/systemd/system) unless it installs with DESTDIR, which takes the
# prefix from CPACK_INSTALL_PREFIX; the .deb handles them by itself.
# The monolithic tarball installs each component by name.
file(WRITE ${PROJECT_BINARY_DIR}/CPackProjectConfig.cmake "
if(CPACK_GENERATOR STREQUAL \"TGZ\")
  set(CPACK_SET_DESTDIR ON)
  set(CPACK_INSTALL_PREFIX /usr)
  set(CPACK_INSTALL_CMAKE_PROJECTS \"${PROJECT_BINARY_DIR};skiff;agent;/;${PROJECT_BINARY_DIR};skiff;queue;/;${PROJECT_BINARY_DIR};skiff;ctl;/\")
endif()
")
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CPackProjectConfig.cmake)
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/;/\\\\.git/")

execute_process(COMMAND uname -m OUTPUT_VARIABLE _machine
                OUTPUT_STRIP_TRAILING_WHITESPACE)
set(CPACK_PACKAGE_FILE_NAME "skiff-${PROJECT_VERSION}-Linux-${_machine}")
set(CPACK_ARCHIVE_COMPONENT_INSTALL OFF)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_PACKAGE_SOURCE skiff)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME skiff-agent)
set(CPACK_DEBIAN_QUEUE_PACKAGE_NAME skiff-queue)
set(CPACK_DEBIAN_CTL_PACKAGE_NAME skiffctl)
set(CPACK_DEBIAN_CTL_PACKAGE_SECTION utils)
# the hooks: curl + jq + openssl talk to metadata services and cloud APIs;
# passwd for useradd in skiff-setup; init-system-helpers for the
# maintainer scripts' deb-systemd-helper
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "curl, jq, openssl, ca-certificates, passwd")
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "docker.io | docker-ce | podman-docker")
set(CPACK_DEBIAN_AGENT_PACKAGE_SUGGESTS "cloud-init, skiffctl")
set(CPACK_DEBIAN_QUEUE_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_QUEUE_PACKAGE_SUGGESTS "skiffctl")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${SKIFF_PROVISION_DIR}/deb/skiff-agent/postinst
    ${SKIFF_PROVISION_DIR}/deb/skiff-agent/prerm
    ${SKIFF_PROVISION_DIR}/deb/skiff-agent/postrm
    ${SKIFF_PROVISION_DIR}/deb/skiff-agent/conffiles)
set(CPACK_DEBIAN_QUEUE_PACKAGE_CONTROL_EXTRA
    ${SKIFF_PROVISION_DIR}/deb/skiff-queue/postinst
    ${SKIFF_PROVISION_DIR}/deb/skiff-queue/prerm
    ${SKIFF_PROVISION_DIR}/deb/skiff-queue/postrm
    ${SKIFF_PROVISION_DIR}/deb/skiff-queue/conffiles)

# First line: the summary; the rest: the extended description.
set(CPACK_COMPONENT_AGENT_DESCRIPTION "worker agent of skiff cloud worker pools
skiff-agent makes a machine a worker of a skiff pool: it registers with
the pool's queue, long-polls it for jobs over HTTPS, runs a job only when
a trusted Ed25519 key signed it, runs each step in its container through
the Docker Engine API or on the host, streams logs, uploads artifacts, and
after idling deregisters so that the VM can terminate itself.
.
This package is what a worker VM image needs: the agent, its systemd
units (installed disabled), the exit and preemption hooks for AWS, GCP,
Azure or a plain power-off, and cloud-init user-data templates.")
set(CPACK_COMPONENT_QUEUE_DESCRIPTION "queue server of skiff cloud worker pools
skiff-queue holds the signed jobs of a pool of skiff-agent workers and
hands them out over HTTPS long-polls, with leases, heartbeats, logs and
artifacts. State lives in SQLite under its data directory, or in
PostgreSQL for several replicas.
.
This package has the server and a systemd unit, installed disabled until
a certificate and an admin token are in place.")
set(CPACK_COMPONENT_CTL_DESCRIPTION "operator command line of skiff worker pools
skiffctl makes the keys of a skiff pool, signs jobs so that the pool's
agents will run them, seals secrets to a pool's key, and drives a
skiff-queue's admin API: submitting jobs, following logs, fetching
artifacts, cancelling jobs, revoking agents and managing registration
tokens.")

include(CPack)
