Feature: Supervision alarms become the incidents the team needs, not thousands of them
  As the supervision team (AES) of a managed-services company
  We want the alarms our monitoring servers raise to open, update and restore incidents by themselves
  So that a carrier outage shows as one incident to work, and recurring faults are corrected automatically

  The customer "resto-chain" is a restaurant chain. Its restaurants reach the network over the
  carrier link "link-orange-paca"; each restaurant site depends on it. Times are Paris local time
  on Monday 1 June 2026. Alarms come from the monitoring server "centreon".

  Background:
    Given the restaurant sites "resto-001" to "resto-050" of "resto-chain" depend on the carrier link "link-orange-paca"

  Scenario: An alarm storm on a carrier link becomes one parent incident
    When the carrier link fails at 09:00 and "centreon" raises 200 alarms in 100 seconds: ping, bgp, voip and http on each of the 50 sites
    Then "resto-chain" has 51 incidents opened by monitoring
    And one of them is the parent incident "Mass outage behind link-orange-paca" on "link-orange-paca", priority P1
    And the other 50 are its children, one per site
    When "centreon" raises the alarm "ping" on "link-orange-paca" at 09:02
    Then that alarm is on the parent incident
    When "centreon" clears every alarm at 09:30
    Then the parent incident and its 50 children are restored at 09:30

  Scenario: An outage of warnings is raised to P1 when a critical alarm joins it
    When "centreon" raises the alarm "cpu" on "resto-001" at 09:00, severity warning
    And "centreon" raises the alarm "cpu" on "resto-002" at 09:00, severity warning
    And "centreon" raises the alarm "cpu" on "resto-003" at 09:01, severity warning
    Then one of them is the parent incident "Mass outage behind link-orange-paca" on "link-orange-paca", priority P3
    When "centreon" raises the alarm "carrier-ping" on "link-orange-paca" at 09:02, severity critical
    Then that alarm is on the parent incident
    And the parent incident has priority P1, with a work note saying it was raised from P3 because of "carrier-ping critical on link-orange-paca"

  Scenario: A clear of the carrier link's alarm alone leaves the outage open until the sites are back
    When "centreon" raises the alarm "ping" on "resto-001" at 09:00, "resto-002" at 09:00 and "resto-003" at 09:01
    And "centreon" raises the alarm "carrier-ping" on "link-orange-paca" at 09:02, severity critical
    And "centreon" clears the alarm "carrier-ping" on "link-orange-paca" at 09:10
    Then the parent incident is still open, with a work note saying it waits for the alarms behind it

  Scenario: A customer whose rules say so has the outage restored when the carrier link is back
    Given "resto-chain" restores its outages when the upstream CI's alarm clears
    When "centreon" raises the alarm "ping" on "resto-001" at 09:00, "resto-002" at 09:00 and "resto-003" at 09:01
    And "centreon" raises the alarm "carrier-ping" on "link-orange-paca" at 09:02, severity critical
    And "centreon" clears the alarm "carrier-ping" on "link-orange-paca" at 09:10
    Then the parent incident and its 3 children are restored at 09:10

  Scenario: A repeated alarm is deduplicated
    When "centreon" raises the alarm "ping" on "router-42" at 09:00
    And "centreon" raises the alarm "ping" on "router-42" at 09:01, 09:02 and 09:03
    Then "resto-chain" has 1 incident opened by monitoring
    And the alarm "ping" on "router-42" was seen 4 times, last at 09:03, on that incident
    And the supervision view of "resto-chain" shows the alarm "ping" on "router-42" open, seen 4 times

  Scenario: A clear restores service
    When "centreon" raises the alarm "ping" on "router-42" at 09:00
    And "centreon" clears the alarm "ping" on "router-42" at 09:25
    Then the incident of the alarm "ping" on "router-42" is restored at 09:25
    And the supervision view of "resto-chain" shows no open alarm

  Scenario: A flapping alarm cleared within its hold opens no incident
    Given "resto-chain" holds alarms of the check "tpe-*" for 300 seconds before opening an incident
    When "centreon" raises the alarm "tpe-offline" on "tpe-0042" at 09:00
    And "centreon" clears the alarm "tpe-offline" on "tpe-0042" at 09:01
    And time passes to 09:10
    Then "resto-chain" has 0 incidents opened by monitoring

  Scenario: An automatic corrective action restores service
    Given "resto-chain" asks the automation platform to run "restart-tpe-gateway" on alarms of the check "tpe-gateway"
    When "centreon" raises the alarm "tpe-gateway" on "gw-aubagne" at 09:00
    Then the automation platform is asked to run "restart-tpe-gateway" on "gw-aubagne" for the incident of that alarm
    When the automation platform reports at 09:02 that "restart-tpe-gateway" succeeded: "gateway restarted"
    Then the incident of the alarm "tpe-gateway" on "gw-aubagne" is restored at 09:02

  Scenario: An alarm that gets worse raises the priority of its incident
    Given "resto-chain" opens incidents for alarms of the check "ping" at impact 3 and urgency 3, and for critical ones at impact 1 and urgency 1
    When "centreon" raises the alarm "ping" on "router-42" at 09:00, severity minor
    Then the incident of the alarm "ping" on "router-42" has priority P4
    When "centreon" updates the alarm "ping" on "router-42" at 09:05, severity critical
    Then the incident of the alarm "ping" on "router-42" has priority P1
    When "centreon" updates the alarm "ping" on "router-42" at 09:10, severity minor
    Then the incident of the alarm "ping" on "router-42" has priority P1
