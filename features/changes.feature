Feature: Changes authorised by the right people, out of freezes and out of each other's way
  As the change manager of a managed-services company
  We want every change on a customer's equipment authorised by the right people and planned when it harms nobody
  So that no change takes the restaurants' card payments down in the middle of the summer sales

  The restaurant chain "resto-chain" connects its restaurants through routers ("router-resto-042" in
  restaurant 42); its core switch in the Marseille data centre is "switch-mrs-core". Low-risk normal
  changes are authorised by the change manager, medium- and high-risk ones by a CAB, emergency
  changes by the emergency CAB, and standard changes by their pre-approved template.

  Background:
    Given the restaurant chain "resto-chain", whose ROC is "roc-anne"

  Scenario: A medium-risk normal change needs the approval of every CAB member
    Given "N2 network" requested the normal change "Replace the Marseille core switch" on "switch-mrs-core" of "resto-chain" on Monday 1 June 2026 at 09:00
    When "change manager" assesses "Replace the Marseille core switch" as medium risk on Monday 1 June 2026 at 10:00
    And "change manager" convenes the CAB "cab-network", "cab-security" and "roc-anne" for "Replace the Marseille core switch" on Monday 1 June 2026 at 10:30
    And "cab-network" approves "Replace the Marseille core switch" on Tuesday 2 June 2026 at 09:00
    And "cab-security" approves "Replace the Marseille core switch" on Tuesday 2 June 2026 at 09:30
    Then "Replace the Marseille core switch" is still awaiting authorisation, "roc-anne" yet to approve
    When "roc-anne" approves "Replace the Marseille core switch" on Tuesday 2 June 2026 at 10:00
    Then "Replace the Marseille core switch" is authorised by the CAB

  Scenario: The change manager alone cannot authorise a medium-risk change
    Given "N2 network" requested the normal change "Replace the Marseille core switch" on "switch-mrs-core" of "resto-chain" on Monday 1 June 2026 at 09:00
    When "change manager" assesses "Replace the Marseille core switch" as medium risk on Monday 1 June 2026 at 10:00
    And "change manager" tries to approve "Replace the Marseille core switch" on Monday 1 June 2026 at 10:15
    Then the change is refused because "it is medium risk and needs a CAB, convene the CAB first"

  Scenario: One CAB member's rejection rejects the change
    Given "N2 network" requested the normal change "Replace the Marseille core switch" on "switch-mrs-core" of "resto-chain" on Monday 1 June 2026 at 09:00
    When "change manager" assesses "Replace the Marseille core switch" as high risk on Monday 1 June 2026 at 10:00
    And "change manager" convenes the CAB "cab-network", "cab-security" and "roc-anne" for "Replace the Marseille core switch" on Monday 1 June 2026 at 10:30
    And "cab-network" approves "Replace the Marseille core switch" on Tuesday 2 June 2026 at 09:00
    And "cab-security" rejects "Replace the Marseille core switch" because "no tested rollback for the payment VLAN" on Tuesday 2 June 2026 at 09:30
    Then "Replace the Marseille core switch" is rejected because "no tested rollback for the payment VLAN"
    When "roc-anne" tries to approve "Replace the Marseille core switch" on Tuesday 2 June 2026 at 10:00
    Then the change is refused because "it was rejected; the decision was already taken"

  Scenario: Scheduling during the summer-sales freeze is refused, naming the freeze
    Given "change manager" froze the changes of "resto-chain" for the "summer sales" from Wednesday 24 June 2026 at 00:00 to Tuesday 21 July 2026 at 23:59
    And "N2 network" had the change "Upgrade router-resto-042 to firmware 15.4" on "router-resto-042" of "resto-chain" authorised by the change manager on Monday 22 June 2026 at 09:00
    When "change manager" tries to schedule "Upgrade router-resto-042 to firmware 15.4" on Thursday 25 June 2026 from 22:00 to 23:00
    Then the change is refused because "freeze window summer sales overlaps"
    When "change manager" schedules "Upgrade router-resto-042 to firmware 15.4" on Tuesday 23 June 2026 from 22:00 to 23:00
    Then "Upgrade router-resto-042 to firmware 15.4" is scheduled on Tuesday 23 June 2026 from 22:00 to 23:00

  Scenario: A change on the same router overlapping another is refused, naming it
    Given "N2 network" had the change "Upgrade router-resto-042 to firmware 15.4" on "router-resto-042" of "resto-chain" authorised by the change manager on Monday 1 June 2026 at 09:00
    And "N2 network" had the change "Add a VLAN for the kiosks on router-resto-042" on "router-resto-042" of "resto-chain" authorised by the change manager on Monday 1 June 2026 at 09:10
    And "N2 network" had the change "Upgrade router-resto-007 to firmware 15.4" on "router-resto-007" of "resto-chain" authorised by the change manager on Monday 1 June 2026 at 09:20
    And "change manager" scheduled "Upgrade router-resto-042 to firmware 15.4" on Tuesday 9 June 2026 from 22:00 to 23:30
    When "change manager" tries to schedule "Add a VLAN for the kiosks on router-resto-042" on Tuesday 9 June 2026 from 23:00 to 23:59
    Then the change is refused because it overlaps the change "Upgrade router-resto-042 to firmware 15.4" on CI router-resto-042
    When "change manager" schedules "Upgrade router-resto-007 to firmware 15.4" on Tuesday 9 June 2026 from 22:00 to 23:30
    Then "Upgrade router-resto-007 to firmware 15.4" is scheduled on Tuesday 9 June 2026 from 22:00 to 23:30

  Scenario: A standard change from its template needs no CAB
    When "field technician" requests the standard change "Swap the payment terminal of restaurant 12" on "tpe-resto-012-1" of "resto-chain" from the template "payment terminal swap" on Monday 1 June 2026 at 08:00
    And "field technician" submits "Swap the payment terminal of restaurant 12" on Monday 1 June 2026 at 08:05
    Then "Swap the payment terminal of restaurant 12" is authorised by its template "payment terminal swap"
    And no CAB was convened for "Swap the payment terminal of restaurant 12"
    When "field technician" schedules "Swap the payment terminal of restaurant 12" on Monday 1 June 2026 from 15:00 to 15:30
    Then "Swap the payment terminal of restaurant 12" is scheduled on Monday 1 June 2026 from 15:00 to 15:30

  Scenario: An emergency change goes through the emergency CAB
    When "N2 network" requests the emergency change "Reroute the Marseille restaurants over the backup carrier" on "link-orange-mrs-12" of "resto-chain" on Monday 1 June 2026 at 08:00
    And "N2 network" submits "Reroute the Marseille restaurants over the backup carrier" on Monday 1 June 2026 at 08:02
    And "change manager" tries to convene the CAB "cab-network" and "cab-security" for "Reroute the Marseille restaurants over the backup carrier" on Monday 1 June 2026 at 08:05
    Then the change is refused because "it is an emergency change, convene the emergency CAB instead"
    When "change manager" convenes the emergency CAB "duty manager" and "cab-network" for "Reroute the Marseille restaurants over the backup carrier" on Monday 1 June 2026 at 08:05
    And "duty manager" approves "Reroute the Marseille restaurants over the backup carrier" on Monday 1 June 2026 at 08:10
    And "cab-network" approves "Reroute the Marseille restaurants over the backup carrier" on Monday 1 June 2026 at 08:12
    Then "Reroute the Marseille restaurants over the backup carrier" is authorised by the emergency CAB
